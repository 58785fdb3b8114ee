# The footfall image: the worker and the tools (`footfall worker`, `footfall simulate`, ...).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY operators ./operators
COPY stream ./stream
COPY scripts ./scripts
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["footfall"]
CMD ["worker"]
