"""DuckDB views over the result store and report rendering."""
