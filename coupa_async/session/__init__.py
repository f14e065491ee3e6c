"""Reaching Coupa: first contact, the network (proxy, CA), Chromium, per-host gates, outages."""
