"""The order guard's benchmark: how often normal trading is held, and what checking an order costs."""
