"""firelane core: layers, coordinates, rule checks, storage, import/export."""
