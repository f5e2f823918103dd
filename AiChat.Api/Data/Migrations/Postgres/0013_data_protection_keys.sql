-- ASP.NET Core Data Protection's key ring (it protects the LiteLLM virtual keys at rest): in the store, so every API
-- instance on it reads and writes one ring. One row per key, as Data Protection hands it over (an XML element).

CREATE TABLE data_protection_keys (
    name        text PRIMARY KEY,
    xml         text NOT NULL,
    created_at  timestamptz NOT NULL
);
