#!/usr/bin/env bash
echo "STABLE_VERSION ${RELEASE_VERSION:-1.0.0}"
