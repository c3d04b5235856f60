"""jichu: batch pipeline for provincial base registers (基础信息库)."""
