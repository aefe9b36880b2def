// Contract: the scheduler's one data structure, a binary min-heap of slot numbers with a position index, so that
// insert, remove-any and pop are each O(log n) and "is this slot in here" is O(1). Every lane of the scheduler
// (incoming, deferred, waiting for a hop) and every age watch (expiry, delay warning) is one of these, keyed by
// what orders it: a sequence number for FIFO lanes, a Unix-ms instant for timed ones. Equal keys pop in slot
// order, so the order is deterministic for tests.
// What it deliberately does not do: hold entries (the scheduler's slot table does) or allocate per insert; its
// arrays grow by doubling and never shrink, so a queue that once held 100,000 messages keeps that room (a few
// MiB), which is cheaper than regrowing under the next outage.
// How it fails: a slot outside the capacity given to Grow is a bug in the scheduler and throws
// IndexOutOfRangeException; nothing here reads outside input.
namespace EdgeMta.Delivery;

public sealed partial class DeliveryScheduler
{
    private sealed class SlotHeap
    {
        private struct Node
        {
            public long Key;
            public int Slot;
        }

        private Node[] _nodes = new Node[16];
        private int[] _position;

        public SlotHeap(int capacity)
        {
            _position = new int[capacity];
            _position.AsSpan().Fill(-1);
        }

        public int Count { get; private set; }

        /// <summary>The smallest key; only when Count &gt; 0.</summary>
        public long PeekKey => _nodes[0].Key;

        /// <summary>The slot with the smallest key; only when Count &gt; 0.</summary>
        public int PeekSlot => _nodes[0].Slot;

        /// <summary>Makes room for slot numbers below <paramref name="capacity"/>.</summary>
        public void Grow(int capacity)
        {
            int old = _position.Length;
            if (capacity <= old) return;
            Array.Resize(ref _position, capacity);
            _position.AsSpan(old).Fill(-1);
        }

        public bool Contains(int slot) => _position[slot] >= 0;

        /// <summary>Adds <paramref name="slot"/> at <paramref name="key"/>, or moves it there when it is in.</summary>
        public void Set(int slot, long key)
        {
            int i = _position[slot];
            if (i >= 0)
            {
                long old = _nodes[i].Key;
                _nodes[i].Key = key;
                if (key < old) Up(i);
                else Down(i);
                return;
            }
            if (Count == _nodes.Length) Array.Resize(ref _nodes, _nodes.Length * 2);
            i = Count++;
            _nodes[i] = new Node { Key = key, Slot = slot };
            _position[slot] = i;
            Up(i);
        }

        public bool Remove(int slot)
        {
            int i = _position[slot];
            if (i < 0) return false;
            _position[slot] = -1;
            int last = --Count;
            if (i != last)
            {
                _nodes[i] = _nodes[last];
                _position[_nodes[i].Slot] = i;
                if (!Up(i)) Down(i);
            }
            return true;
        }

        public int Pop()
        {
            int slot = _nodes[0].Slot;
            Remove(slot);
            return slot;
        }

        private static bool Less(in Node a, in Node b) => a.Key < b.Key || (a.Key == b.Key && a.Slot < b.Slot);

        /// <summary>Sifts node i toward the root; true when it moved.</summary>
        private bool Up(int i)
        {
            int start = i;
            Node node = _nodes[i];
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (!Less(node, _nodes[parent])) break;
                _nodes[i] = _nodes[parent];
                _position[_nodes[i].Slot] = i;
                i = parent;
            }
            _nodes[i] = node;
            _position[node.Slot] = i;
            return i != start;
        }

        private void Down(int i)
        {
            Node node = _nodes[i];
            int count = Count;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= count) break;
                if (child + 1 < count && Less(_nodes[child + 1], _nodes[child])) child++;
                if (!Less(_nodes[child], node)) break;
                _nodes[i] = _nodes[child];
                _position[_nodes[i].Slot] = i;
                i = child;
            }
            _nodes[i] = node;
            _position[node.Slot] = i;
        }
    }
}
