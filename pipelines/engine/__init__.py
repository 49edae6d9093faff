"""The engine: config → plan → runner. Planning modules never import Spark."""
