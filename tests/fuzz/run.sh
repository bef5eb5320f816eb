#!/bin/sh
echo "fuzz: not written yet"
