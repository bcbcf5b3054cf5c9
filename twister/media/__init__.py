"""Media helpers: what a source offers, what a container holds, what a file contains."""
