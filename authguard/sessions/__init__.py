"""The signed-in session: its step-up state, its binding to a network and device, the
middleware and view decorators that enforce it, and Device Bound Session Credentials (``dbsc``).
"""
