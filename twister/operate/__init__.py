"""What an operator does from the command line beyond the HTTP API: replaying jobs, watching a download."""
