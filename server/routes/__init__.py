"""Byte routes beside /graphql: plain HTTP for what must not pass through GraphQL JSON."""
