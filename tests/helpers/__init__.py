"""What several test modules share: helpers live here once, and no test module imports another."""
