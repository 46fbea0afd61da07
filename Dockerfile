# sigscore HTTP service and CLI.
#   docker build -t sigscore .            (or: buildah bud -t sigscore .)
#   docker run -p 8000:8000 -v sigscore-data:/var/lib/sigscore sigscore
#   scale-out (API + workers + PostgreSQL): docker compose up --scale worker=3 (compose.yaml)
# BASE may be any Debian-bookworm-like image with python3 (>= 3.11) and python3-venv;
# scripts/container_smoke.sh builds one offline-from-registries with debootstrap.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# Behind a TLS-intercepting proxy, mount its CA bundle and pass PIP_CERT (see
# scripts/container_smoke.sh); unset by default.
ARG PIP_CERT
ARG PIP_INDEX_URL
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY service ./service
COPY signatures ./signatures
# binutils (this stage only) strips debug symbols from the wheels' native libraries: about
# 190 MB of the image (llvmlite, polars, pyarrow, uvloop, numcodecs), never used at run time.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
# EXTRAS: [service] by default; "service,dask" adds the Dask hand-off (SIGSCORE_DASK_SCHEDULER).
# .h5ad uploads are read by anndata, a core dependency; scanpy (the plug-in's, with
# umap/pynndescent/seaborn) is not the server's.
ARG EXTRAS=service
# Then what is never used at run time goes: test folders, pyarrow's Flight/S3 libraries (no
# module of sigscore or its dependencies imports pyarrow.flight or the S3 filesystem), C++
# headers and Cython sources, pip/setuptools; and the debug symbols of every native library
# except the auditwheel-vendored ones in *.libs/ (left as the wheels ship them).
RUN python3 -m venv /opt/sigscore \
 && /opt/sigscore/bin/pip install --no-cache-dir --disable-pip-version-check ".[${EXTRAS}]" \
 && /opt/sigscore/bin/sigscore --version \
 && site=$(/opt/sigscore/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && find "$site" -name '__pycache__' -prune -o -type d -name tests -path '*/site-packages/*/tests' -prune -exec rm -rf {} + \
 && rm -rf "$site"/pyarrow/include "$site"/pyarrow/src "$site"/pyarrow/libarrow_flight.so* \
      "$site"/pyarrow/libarrow_python_flight.so* "$site"/pyarrow/_flight.* "$site"/pyarrow/flight.py \
      "$site"/pyarrow/libarrow_s3.so* "$site"/pyarrow/_s3fs.* "$site"/pyarrow/_pyarrow_cpp_tests.* \
 && find "$site" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete \
 && find "$site" -path '*.libs' -prune -o -type f -name '*.so*' -exec strip --strip-unneeded {} + \
 && /opt/sigscore/bin/pip uninstall --yes --disable-pip-version-check setuptools pip \
 && /opt/sigscore/bin/python -c "import numpy, scipy.stats, pandas, polars, pyarrow.parquet, numba, h5py, anndata, sklearn.linear_model, statsmodels.api, matplotlib.figure, sqlalchemy, uvicorn, sigscore_service.app"

FROM ${BASE}
ARG VERSION=0
LABEL org.opencontainers.image.title="sigscore" \
      org.opencontainers.image.description="Score IL-6/STAT3 sorafenib-resistance programmes in HCC expression data (HTTP service and CLI). Research use only." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/sigscore /opt/sigscore
# An unprivileged user owns the job store and results; nothing runs as root.
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/sigscore sigscore
ENV PATH=/opt/sigscore/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SIGSCORE_DATA_DIR=/var/lib/sigscore \
    MPLBACKEND=Agg \
    NUMBA_CACHE_DIR=/var/lib/sigscore/.numba
# numeric: a runtime that checks runAsNonRoot (Kubernetes) cannot resolve a user name
USER 10001:10001
WORKDIR /var/lib/sigscore
VOLUME ["/var/lib/sigscore"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# `sigscore serve` applies the SIGSCORE_ edge limits (header caps, head/body read timeouts,
# keep-alive, connection cap; see sigscore_service/server.py): do not replace it with uvicorn.
# Workers only: `sigscore worker` (compose.yaml). On SIGTERM both hand unfinished jobs back.
ENTRYPOINT ["sigscore"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
