-- Description: Notes are searchable
-- A virtual table, with shadow tables of its own (search_fts_data, ...).
CREATE VIRTUAL TABLE search_fts USING fts5(title, body, content = 'notes');
