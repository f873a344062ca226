"""All file writing of the project (submission CSVs, tables, plots, bundles) lives here,
one module per kind of output."""
