"""Adapters that plug loom_models in where agent frameworks keep their state.

    from loom_models.integrations.openai_agents import LoomSession   # pip install "loom-models[openai-agents]"

Each module imports its framework; importing loom_models imports none of them.
"""
