"""Portal two's accounts: an e-mail-login user, cash and positions, orders, and its views."""
