# orchestrator-mcp: a small image that runs as a non-root user.
#   docker build -t orchestrator-mcp .
#   docker run --rm -e ORCH_DATABASE_URL=postgresql+asyncpg://user:pass@db:5432/orchestrator \
#       -p 8765:8765 orchestrator-mcp
# The default command serves streamable HTTP on port 8765; `serve` alone speaks stdio instead.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator_mcp ./orchestrator_mcp
COPY tool_catalog ./tool_catalog
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/orchestrator orchestrator
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER orchestrator
WORKDIR /home/orchestrator
EXPOSE 8765
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/health/ready', timeout=2)"]
ENTRYPOINT ["orchestrator-mcp"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8765"]
