"""Dead letters worked by hand: replay and discard, shared by the API and the terminal."""
