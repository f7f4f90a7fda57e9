"""The examples' downstream MCP server: deterministic forecasts and a message board.

It ships with the package so that `examples/catalog.json` works wherever the package is installed:
the console script `orchestrator-mcp-weather-example` runs it over stdio, or over streamable HTTP
with `--http 9000` (served at http://127.0.0.1:9000/mcp); `python examples/weather_server.py`
does the same from a checkout.
The forecast for a city and a date is derived from a hash, so the same question always gets the
same answer; posted messages are kept in memory (and appended to `--board FILE` when given).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

CITIES = ["Lyon", "Paris", "Marseille", "Nice", "Lille", "Bordeaux", "Nantes", "Strasbourg"]

mcp = MCPServer("weather", instructions="Deterministic forecasts for French cities, and a message board.")
board: list[dict[str, str]] = []
board_file: Path | None = None


class Forecast(BaseModel):
    city: str
    date: str
    rain_probability: int = Field(description="Chance of rain, 0-100 %.")
    temperature_c: int
    summary: str


class Message(BaseModel):
    id: int
    channel: str
    text: str


@mcp.tool()
def get_forecast(
    city: Annotated[str, Field(description="One of the known cities, e.g. 'Lyon'.")],
    day: Annotated[str | None, Field(description="ISO date (YYYY-MM-DD); default today.")] = None,
) -> Forecast:
    """The forecast for a city on a day. Example: {"city": "Lyon"}."""
    if city not in CITIES:
        raise ToolError(f"unknown city '{city}'; known cities: {', '.join(CITIES)}")
    when = day or date.today().isoformat()
    digest = hashlib.sha256(f"{city}|{when}".encode()).digest()
    rain = digest[0] * 100 // 255
    temperature = digest[1] % 30 - 2
    summary = "rain" if rain > 60 else "clouds" if rain > 30 else "sun"
    return Forecast(city=city, date=when, rain_probability=rain, temperature_c=temperature, summary=summary)


@mcp.tool()
def list_cities() -> list[str]:
    """The cities get_forecast knows."""
    return CITIES


@mcp.tool()
def post_message(
    channel: Annotated[str, Field(min_length=1, max_length=100, description="Channel name, e.g. 'alerts'.")],
    text: Annotated[str, Field(min_length=1, max_length=4000, description="The message.")],
) -> Message:
    """Post a message to a channel of the board. Example: {"channel": "alerts", "text": "Rain at 5 pm"}."""
    message = {"channel": channel, "text": text}
    board.append(message)
    if board_file is not None:
        with board_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(message) + "\n")
    return Message(id=len(board), channel=channel, text=text)


def main() -> None:
    global board_file
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT")
    parser.add_argument("--board", type=Path, help="append posted messages to this file (JSON lines)")
    args = parser.parse_args()
    board_file = args.board
    if args.http:
        mcp.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        mcp.run("stdio")


if __name__ == "__main__":
    main()
