"""Great Expectations for jichu: custom expectations for Chinese identifiers, and the suites
built from the field-authority registry in conf/ (imported as `jichu_expectations`)."""
