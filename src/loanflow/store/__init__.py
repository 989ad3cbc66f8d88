"""Where processed applications, their results and the API keys live."""
