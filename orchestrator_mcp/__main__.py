import sys

from orchestrator_mcp.cli import main

sys.exit(main())
