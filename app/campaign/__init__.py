"""Outbound campaigns: contacts, calling hours, retries, results (``voice-agent campaign``)."""
