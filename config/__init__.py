"""The configuration leaf: settings every layer may read (``config.settings``), importing no
other module of this project."""
