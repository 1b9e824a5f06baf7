"""The rule engine: pure checks over GeoDataFrames in a local metric CRS, one module per rule family."""
