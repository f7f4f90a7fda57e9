# orchestrator-mcp: a small image that runs as a non-root user (uid 10001).
#   docker build -t orchestrator-mcp .
#   docker run -d --name orchestrator -v orchestrator-data:/data -p 127.0.0.1:8765:8765 orchestrator-mcp
# The default command serves streamable HTTP on port 8765 with the SQLite file in the /data
# volume (name the volume, as above, or the database goes with the container). Other commands:
#   docker run -i --rm -v orchestrator-data:/data orchestrator-mcp serve    # stdio, for an MCP client
#   docker run -d -v orchestrator-data:/data orchestrator-mcp worker        # the engine alone
# With PostgreSQL, set ORCH_DATABASE_URL=postgresql://user:pass@host:5432/db (see docker-compose.yml).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator_mcp ./orchestrator_mcp
COPY tool_catalog ./tool_catalog
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORCH_DATABASE_URL=sqlite:////data/orchestrator.db \
    ORCH_BACKGROUND_WORKER=off
# A background worker would die with the container: here the served process fires tasks itself.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/orchestrator orchestrator \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY docker/healthcheck.py /usr/local/lib/orchestrator-healthcheck.py
USER 10001:10001
WORKDIR /home/orchestrator
VOLUME ["/data"]
EXPOSE 8765
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/lib/orchestrator-healthcheck.py"]
# On SIGTERM, runs get ORCH_SHUTDOWN_GRACE_SECONDS (10) to finish: stop with `docker stop -t 30`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orchestrator-mcp"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8765"]
