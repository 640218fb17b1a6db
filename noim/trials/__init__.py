"""Built-in trial definitions (TOML): ``nim.toml`` and ``example.toml``."""
