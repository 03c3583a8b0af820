"""The embedded sandbox: a moto server, a throwaway PostgreSQL cluster and scenarios, on loopback only."""
