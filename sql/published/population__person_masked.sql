-- Masked view for analysts: ID numbers keep region and last four, names keep the surname,
-- birth dates are reduced to the year. Analysts query this view, not the table.
CREATE OR REPLACE VIEW published.population__person_masked AS
SELECT
  entity_id,
  concat(substring(id_number, 1, 6), '********', substring(id_number, 15, 4)) AS id_number_masked,
  concat(substring(name, 1, 1), repeat('*', greatest(length(name) - 1, 0))) AS name_masked,
  sex,
  year(birth_date) AS birth_year,
  ethnicity,
  address_code,
  marital_status,
  year(death_date) AS death_year,
  insured_status,
  grade,
  id_number_source, name_source, sex_source, birth_date_source, ethnicity_source, address_code_source,
  marital_status_source, death_date_source, insured_status_source, grade_source
FROM published.population__person
