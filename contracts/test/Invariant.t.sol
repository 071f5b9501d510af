// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Merkle} from "./utils/Merkle.sol";
import {MockUSDai} from "../src/MockUSDai.sol";
import {StakedUSDaiQueue} from "../src/StakedUSDaiQueue.sol";
import {QEVSettlement} from "../src/QEVSettlement.sol";

/// @notice Drives the vault and the settlement with random deposits, requests, time, servicing,
///         settlements, single and batch claims, and claims against unsettled auctions.
contract Handler is Test {
    MockUSDai public usdai;
    StakedUSDaiQueue public vault;
    QEVSettlement public settlement;
    address internal admin;
    address[5] internal actors = [address(0x1001), address(0x1002), address(0x1003), address(0x1004), address(0x1005)];

    uint64 internal immutable genesis;
    uint64 internal constant W = 30 days;
    bytes32 internal constant SK = keccak256("sk");

    uint64[] public settled;
    mapping(uint64 => QEVSettlement.Allocation[]) internal _allocs;
    mapping(uint64 => bytes32[]) internal _trees;

    // ghosts
    uint256 public mintedShares;
    uint256 public servicedShares;
    uint256 public qevRemovedShares;
    uint256 public claimsWithoutSettle;
    uint256 public claimCount;

    constructor(MockUSDai usdai_, StakedUSDaiQueue vault_, QEVSettlement settlement_, address admin_) {
        usdai = usdai_;
        vault = vault_;
        settlement = settlement_;
        admin = admin_;
        genesis = vault.genesisTimestamp();
    }

    function settledCount() external view returns (uint256) {
        return settled.length;
    }

    function _commitCurrent() internal {
        uint64 t = vault.redemptionTimestamp();
        (, bytes32 c,,) = settlement.auctionKey(t);
        if (c == bytes32(0)) settlement.commitAuctionKey(t, keccak256(abi.encode(t)), keccak256(abi.encodePacked(SK)));
    }

    function deposit(uint256 who, uint256 amount) external {
        address a = actors[who % actors.length];
        amount = bound(amount, 1e18, 1_000_000e18);
        vm.prank(admin);
        usdai.mint(a, amount);
        vm.startPrank(a);
        usdai.approve(address(vault), amount);
        mintedShares += vault.deposit(amount, a);
        vm.stopPrank();
    }

    function requestRedeem(uint256 who, uint256 shares) external {
        address a = actors[who % actors.length];
        uint256 bal = vault.balanceOf(a);
        if (bal < 1e18) return;
        shares = bound(shares, 1e18, bal);
        vm.prank(a);
        vault.requestRedeem(shares, a, a);
    }

    function tick(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1 hours, 25 days));
        _commitCurrent();
    }

    function setYield(uint256 y) external {
        vm.prank(admin);
        vault.setExternalAssets(bound(y, 0, 1_000_000e18));
    }

    function service(uint256 shares) external {
        (,,, uint256 pending,) = vault.redemptionQueueInfo();
        uint256 free = pending - vault.qevLockedShares();
        if (free == 0) return;
        shares = bound(shares, 1, free);
        try vault.serviceRedemptions(shares) {
            servicedShares += shares;
        } catch {}
    }

    struct Ctx {
        uint256 price;
        uint256 room;
        uint256 liquidity;
        uint256 shares;
        uint256 burnt;
        uint256 payout;
        uint256 seed;
    }

    /// Settle the last closed auction with fills for up to 8 matured requests.
    function settle(uint256 seed) external {
        if (block.timestamp < genesis + W) return;
        uint64 t = uint64(genesis + ((block.timestamp - genesis) / W) * W);
        if (settlement.isSettled(t)) return;
        (, bytes32 c,,) = settlement.auctionKey(t);
        if (c == bytes32(0)) return;

        (uint256 index,,, uint256 pending,) = vault.redemptionQueueInfo();
        Ctx memory x = Ctx(vault.redemptionSharePrice(), pending - vault.qevLockedShares(), vault.depositBalance(), 0, 0, 0, seed);
        for (uint256 id = 1; id <= index && _allocs[t].length < 8; id++) {
            if (!_fill(t, id, x)) break;
        }
        bytes32 root;
        QEVSettlement.Allocation[] storage list = _allocs[t];
        if (list.length > 0) {
            bytes32[] memory leaves = new bytes32[](list.length);
            for (uint256 i; i < list.length; i++) leaves[i] = _leaf(t, list[i]);
            bytes32[] memory tree = Merkle.build(leaves);
            for (uint256 i; i < tree.length; i++) _trees[t].push(tree[i]);
            root = tree[0];
        }
        settlement.commitBook(t, bytes32(seed), seed == 0 ? 0 : 1);
        settlement.settleAuction(t, root, bytes32(seed), x.shares, x.burnt, x.payout);
        settled.push(t);
    }

    /// @dev Maybe add a fill for request `id`; false = stop (out of room or liquidity).
    function _fill(uint64 t, uint256 id, Ctx memory x) internal returns (bool) {
        (address controller, uint64 ts, uint256 p) = vault.qevRedemptionInfo(id);
        if (p == 0 || ts > t) return true;
        x.seed = uint256(keccak256(abi.encode(x.seed, id)));
        if (x.seed % 3 == 0) return true;
        uint256 filled = bound(x.seed >> 8, 1, p);
        if (filled > x.room - x.shares) return false;
        uint256 b = filled * bound(x.seed >> 128, 10, 10_000) / 10_000;
        uint256 pay = (filled - b) * x.price / 1e18;
        if (x.payout + pay > x.liquidity) return false;
        _allocs[t].push(QEVSettlement.Allocation(id, controller, filled, b, pay));
        x.shares += filled;
        x.burnt += b;
        x.payout += pay;
        return true;
    }

    function claim(uint256 auctionSeed, uint256 leafSeed) external {
        if (settled.length == 0) return;
        uint64 t = settled[auctionSeed % settled.length];
        QEVSettlement.Allocation[] storage list = _allocs[t];
        if (list.length == 0) return;
        QEVSettlement.Allocation memory a = list[leafSeed % list.length];
        bytes32[] memory tree = _trees[t];
        bytes32[] memory proof = Merkle.proof(tree, Merkle.indexOf(tree, _leaf(t, a)));
        (,,, uint256 before,) = vault.redemptionQueueInfo();
        try settlement.claim(t, a.redemptionId, a.controller, a.sharesFilled, a.sharesBurnt, a.payout, proof) {
            (,,, uint256 afterP,) = vault.redemptionQueueInfo();
            qevRemovedShares += before - afterP;
            claimCount++;
        } catch {}
    }

    function claimBatch(uint256 auctionSeed, uint256 mask) external {
        if (settled.length == 0) return;
        uint64 t = settled[auctionSeed % settled.length];
        QEVSettlement.Allocation[] storage list = _allocs[t];
        if (list.length == 0) return;
        bytes32[] memory tree = _trees[t];
        uint256 n;
        uint256[] memory idx = new uint256[](list.length);
        for (uint256 i; i < list.length; i++) {
            if ((mask >> i) & 1 == 1 || i == 0) idx[n++] = Merkle.indexOf(tree, _leaf(t, list[i]));
        }
        assembly {
            mstore(idx, n)
        }
        (uint256[] memory order, bytes32[] memory proof, bool[] memory flags) = Merkle.multiProof(tree, idx);
        QEVSettlement.Allocation[] memory batch = new QEVSettlement.Allocation[](n);
        for (uint256 i; i < n; i++) {
            for (uint256 j; j < list.length; j++) {
                if (tree[order[i]] == _leaf(t, list[j])) batch[i] = list[j];
            }
        }
        (,,, uint256 before,) = vault.redemptionQueueInfo();
        try settlement.claimMultiple(t, batch, proof, flags) {
            (,,, uint256 afterP,) = vault.redemptionQueueInfo();
            qevRemovedShares += before - afterP;
            claimCount++;
        } catch {}
    }

    /// Claiming a made-up leaf of an auction that is not settled must never succeed.
    function claimUnsettled(uint256 id, uint256 shares, uint256 payout, bytes32 sib) external {
        uint64 t = vault.redemptionTimestamp(); // open auction: never settled
        (address controller,,) = vault.qevRedemptionInfo(id % 50 + 1);
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = sib;
        try settlement.claim(t, id % 50 + 1, controller, shares, 0, payout, proof) {
            claimsWithoutSettle++;
        } catch {}
    }

    function _leaf(uint64 t, QEVSettlement.Allocation memory a) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(keccak256(abi.encode(t, a.redemptionId, a.controller, a.sharesFilled, a.sharesBurnt, a.payout)))
        );
    }
}

contract InvariantTest is Test {
    MockUSDai internal usdai;
    StakedUSDaiQueue internal vault;
    QEVSettlement internal settlement;
    Handler internal handler;
    address internal admin = address(0xA11CE);

    function setUp() public {
        vm.warp(1_700_000_000);
        usdai = new MockUSDai(admin);
        vault = new StakedUSDaiQueue(address(usdai), 0, admin);
        settlement = new QEVSettlement(address(vault), admin, 100, address(0xFEE));
        handler = new Handler(usdai, vault, settlement, admin);
        vm.startPrank(admin);
        vault.grantRole(vault.QEV_SETTLEMENT_ROLE(), address(settlement));
        vault.grantRole(vault.STRATEGY_ADMIN_ROLE(), address(handler));
        settlement.grantRole(settlement.KEEPER_ROLE(), address(handler));
        usdai.grantRole(usdai.MINTER_ROLE(), address(handler));
        vm.stopPrank();
        uint64 t1 = vault.redemptionTimestamp();
        vm.prank(admin);
        settlement.commitAuctionKey(t1, bytes32(uint256(1)), keccak256(abi.encodePacked(keccak256("sk"))));
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    /// Per auction: claims never exceed what was settled (payout and shares).
    function invariant_claimsWithinSettlement() public view {
        uint256 n = handler.settledCount();
        for (uint256 i; i < n; i++) {
            (,, uint256 ts,, uint256 tp, uint256 cs, uint256 cp,,) = settlement.auction(handler.settled(i));
            assertLe(cp, tp, "claimed payout > settled payout");
            assertLe(cs, ts, "claimed shares > settled shares");
        }
    }

    /// The escrow holds exactly the unclaimed payouts, and the vault's locked shares are the unclaimed fills.
    function invariant_escrowAndLocksMatchUnclaimed() public view {
        uint256 n = handler.settledCount();
        uint256 unclaimedPayout;
        uint256 unclaimedShares;
        for (uint256 i; i < n; i++) {
            (,, uint256 ts,, uint256 tp, uint256 cs, uint256 cp,,) = settlement.auction(handler.settled(i));
            unclaimedPayout += tp - cp;
            unclaimedShares += ts - cs;
        }
        assertEq(usdai.balanceOf(address(settlement)), unclaimedPayout);
        assertEq(vault.qevLockedShares(), unclaimedShares);
    }

    /// Pending-share accounting is conserved: per-request pending sums to the queue's pending, locks fit in
    /// it, and every share ever minted is held, pending, serviced or removed by a QEV claim.
    function invariant_pendingSharesConserved() public view {
        (uint256 index,,, uint256 pending, uint256 balance) = vault.redemptionQueueInfo();
        uint256 sum;
        for (uint256 id = 1; id <= index; id++) {
            (,, uint256 p) = vault.qevRedemptionInfo(id);
            sum += p;
        }
        assertEq(sum, pending, "sum of request pending != pending");
        assertLe(vault.qevLockedShares(), pending);
        uint256 fees = vault.balanceOf(address(0xFEE));
        assertEq(
            handler.mintedShares() + fees,
            vault.totalSupply() + pending + handler.servicedShares() + handler.qevRemovedShares(),
            "share conservation"
        );
        assertGe(usdai.balanceOf(address(vault)), balance);
    }

    /// No claim succeeds for an auction that was not settled.
    function invariant_noClaimWithoutSettle() public view {
        assertEq(handler.claimsWithoutSettle(), 0);
    }
}
