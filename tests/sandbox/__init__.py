"""The stand-in's own tests and its pytest fixtures (the stand-in itself is bot.sandbox.standin)."""
