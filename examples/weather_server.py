"""The example weather server, from a checkout: `python examples/weather_server.py [--http PORT]`.

Its code is `orchestrator_mcp/demo_weather.py`, installed with the package as the console script
`orchestrator-mcp-weather-example` (which is what examples/catalog.json runs).
"""

from orchestrator_mcp.demo_weather import main

if __name__ == "__main__":
    main()
