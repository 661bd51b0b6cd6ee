"""The outbox worker: claims due messages and delivers them through a transport."""
