"""Project support code shipped with the Astro project (data generators, configs)."""
