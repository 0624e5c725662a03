"""Policies: the scripted red follower and scripted blues (and, later, PPO+SOO agents)."""

from agents.scripted import BatchPolicy, FollowerRed, ScriptedBlue

__all__ = ["BatchPolicy", "FollowerRed", "ScriptedBlue"]
