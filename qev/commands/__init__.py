"""One module per ``qev`` subcommand group; each has ``register(subparsers)``."""
