#!/usr/bin/env bash
# Workspace status: the release version comes from the environment in tests.
echo "STABLE_VERSION ${RELEASE_VERSION:-9.9.9}"
echo "STABLE_COMMIT cafe"
