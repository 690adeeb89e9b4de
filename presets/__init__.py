"""Goal presets as TOML files (shipped as ``gdo_opt.presets``)."""
