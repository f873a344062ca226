"""One module per CLI sub-command (see ``automl_asd.cli.COMMANDS``)."""
