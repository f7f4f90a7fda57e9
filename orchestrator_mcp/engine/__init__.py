"""The moving parts: the loop that fires and claims work, and the runner that executes one run."""
