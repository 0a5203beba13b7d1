"""Clients of services outside Purser, one package per service.

Each package speaks its service's wire format and turns it into typed models and typed
errors; nothing here touches Purser's database or imports FastAPI's request machinery.
"""
