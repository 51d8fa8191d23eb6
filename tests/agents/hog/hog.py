chunks = []
for _ in range(64):
    chunks.append(bytearray(64 * 1024 * 1024))  # touched pages: 4 GB in total
    chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])
print("allocated everything: the memory limit did not hold")
