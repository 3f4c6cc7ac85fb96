# One image for every pktpath service: the command picks the layer
# (`serve nic --host A ...`), as docker-compose.yml does.
#
#   docker build -t pktpath .                            # from the package index
#   docker build --build-arg BASE=my-debian:bookworm .   # any base with python3 >= 3.11 and venv
#
# A wheelhouse/ in the build context (`pip wheel -w wheelhouse .`) makes the build
# offline: everything is installed from it and nothing is fetched.
ARG BASE=python:3.11-slim
FROM ${BASE}

# The services run as this user; /run/pktpath is where a host's layers meet (the hop
# and interrupt sockets), a volume that takes this directory's owner when created.
RUN (useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pktpath \
     || adduser --system --uid 10001 --no-create-home pktpath) \
    && mkdir -p /run/pktpath && chown pktpath /run/pktpath

COPY . /src
RUN python3 -m venv /opt/pktpath \
    && if ls /src/wheelhouse/*.whl >/dev/null 2>&1; then \
           /opt/pktpath/bin/pip install --no-cache-dir --no-index --find-links /src/wheelhouse pktpath; \
       else \
           /opt/pktpath/bin/pip install --no-cache-dir /src; \
       fi \
    && rm -rf /src

ENV PATH=/opt/pktpath/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PKTPATH_LISTEN_ALL=1 \
    PKTPATH_HOP_DIR=/run/pktpath
USER pktpath
ENTRYPOINT ["pktpath"]
CMD ["--help"]
