"""The demo portal's small online brokerage: instruments, cash accounts, positions and orders."""
