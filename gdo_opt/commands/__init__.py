"""One module per `gdo-opt` subcommand (see gdo_opt.cli)."""
