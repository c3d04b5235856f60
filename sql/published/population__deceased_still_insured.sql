-- Persons who died (卫健's certificate, else 民政's funeral record) but whom 人社's insured-person
-- snapshot still lists in a later batch: 人社 has not learnt of the death. One row per such listing.
CREATE OR REPLACE VIEW published.population__deceased_still_insured AS
SELECT
  p.entity_id,
  p.death_date,
  p.death_date_source,
  l.batch AS listed_in_batch,
  l.record_ref
FROM published.population__person p
JOIN resolved.population__person_listings l
  ON l.entity_id = p.entity_id AND l.agency = 'renshe' AND l.extract = 'insured'
WHERE p.death_date IS NOT NULL AND to_date(l.batch) > p.death_date
