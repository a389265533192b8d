"""The post-call webhook: one signed JSON POST per ended call to ``POST_CALL_WEBHOOK_URL``.

``signing`` (the HMAC header), ``payload`` (the body from a call record), ``policy`` (which
answers are retried, and the back-off), ``summary`` (the optional LLM summary and disposition),
``deliverer`` (the outbox sweeper that sends them; the outbox itself is ``app.records.outbox``).
"""
