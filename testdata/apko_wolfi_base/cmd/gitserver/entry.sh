#!/bin/sh
echo gitserver
