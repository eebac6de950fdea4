"""Print the schema in SDL: `python -m graph.print_schema > graph/schema.graphql`."""

from __future__ import annotations

from graph.schema import schema

if __name__ == "__main__":
    print(schema.as_str())
