"""Serving on Ray Serve: OpenAI-compatible endpoints, one base model with many LoRA adapters, hybrid
RAG with citations, PHI guard, API keys, rate limits and an audit log.

    clinitune serve --config serving/local.yaml        # or: serve run serving/local.yaml

Deployments: ``Gateway`` (FastAPI ingress: auth, limits, PHI guard, audit, metrics) ->
``Generator`` (transformers + PEFT, adapters multiplexed per replica, dynamic batching) and
``Retriever`` (LanceDB hybrid search). ``clinitune.serve.app:build_app`` builds the application;
``clinitune.serve.config.ServeAppConfig`` is the config file's schema.
"""
