-- New catalogue entries: a category of their own for vector stores, and five tool types.
-- The category list is a CHECK of V1; widening it is the only way a category is added. The
-- INSERT fires V7's trigger, which recompiles credentials_type_known from this table.
ALTER TABLE credential_types
    DROP CONSTRAINT credential_types_category_check,
    ADD CONSTRAINT credential_types_category_check CHECK (category IN (
        'llm', 'speech', 'image', 'video', 'data_warehouse', 'vector_store', 'tools'));

INSERT INTO credential_types (type_id, category) VALUES
    ('pinecone', 'vector_store'), ('qdrant', 'vector_store'), ('weaviate', 'vector_store'),
    ('milvus', 'vector_store'), ('chroma', 'vector_store'),
    ('airtable', 'tools'), ('notion', 'tools'), ('confluence', 'tools'), ('serper', 'tools'),
    ('serpapi', 'tools');
